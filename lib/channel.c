// SPDX-License-Identifier: MIT
/* PLACEHOLDER: channel is not written yet. */
#include "region_internal.h"
