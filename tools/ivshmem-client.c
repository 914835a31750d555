// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the QEMU-compatible client is not written yet. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ivshmem-client: not available in this build\n");
	return 1;
}
