// SPDX-License-Identifier: MIT
/* PLACEHOLDER: ring is not written yet. */
#include "region_internal.h"
