/* banned.h - functions crisp never calls (forced into every file by the Makefile).
 * They overflow buffers or keep hidden state; use buf_*, xasprintf, strtok_r instead. */
#ifndef CRISP_BASE_BANNED_H
#define CRISP_BASE_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_crisp

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)

#endif
