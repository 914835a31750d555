// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the server is not written yet. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "ivshmem-server: not available in this build\n");
	return 1;
}
