/* SPDX-License-Identifier: MIT */
/* Which sanitizer this test binary is built with, for gcc and clang alike. */
#ifndef IVSHMEM_TESTS_SANITIZERS_H
#define IVSHMEM_TESTS_SANITIZERS_H

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#endif
