/* driver/placeholder.c — placeholder so the library has a source until its layer lands; delete when real files exist. */
typedef int tfx_placeholder_driver;
