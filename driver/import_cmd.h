/* driver/import_cmd.h — the `tfxc import` subcommand (driver/import_cmd.c). */
#ifndef TFX_DRIVER_IMPORT_CMD_H
#define TFX_DRIVER_IMPORT_CMD_H

/* Its usage line. */
extern const char *const tfx_drv_import_usage;

/* tfxc import ...: argv[1] is "import". Returns the exit status (0, 1 for
 * an error, 2 for a usage error). */
int tfx_drv_import_main(int argc, char **argv);

#endif
