#ifndef DROVER_PTY_H
#define DROVER_PTY_H
#include <stddef.h>

/// Opens a pseudo-terminal; returns the master descriptor (or -1) and writes the slave's path to `name`.
int drover_open_pty(char *name, size_t length);

#endif
