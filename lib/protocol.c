// SPDX-License-Identifier: MIT
/* PLACEHOLDER: protocol is not written yet. */
#include "region_internal.h"
