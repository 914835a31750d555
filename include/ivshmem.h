/* SPDX-License-Identifier: MIT */
/* libivshmem umbrella header. */
#ifndef IVSHMEM_H
#define IVSHMEM_H

#include "ivshmem/iomem.h"
#include "ivshmem/region.h"

#endif
