/* tests/support/empty.c — keeps the support library non-empty. */
typedef int tfx_test_support_empty;
