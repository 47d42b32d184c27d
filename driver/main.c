/* driver/main.c — the tfxc command line (placeholder). */
int main(void) { return 0; }
