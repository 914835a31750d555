// SPDX-License-Identifier: MIT
/* PLACEHOLDER: layout is not written yet. */
#include "region_internal.h"
