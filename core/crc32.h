/*
 * crc32.h - CRC-32 with the IEEE 802.3 / zlib polynomial (reflected,
 * 0xEDB88320, initial and final value 0xFFFFFFFF), so a checksum this code
 * writes can be checked with zlib, Python's zlib.crc32 or `crc32` tools.
 *
 * The interface is zlib's: pass 0 to start, then feed the previous result
 * back in to continue, so a checksum can be computed over pieces.
 */
#ifndef PRESHIFT_CRC32_H
#define PRESHIFT_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc = ps_crc32(0, a, na); crc = ps_crc32(crc, b, nb); equals one call on a||b. */
uint32_t ps_crc32(uint32_t crc, const void *buf, size_t len);

#endif
