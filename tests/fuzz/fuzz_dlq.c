/*
 * fuzz_dlq.c - libFuzzer target: evb_dlq_decode() (bus/dlq.c,
 * dlq_format.h) on hostile dead-letter values.
 *
 * Input: the value's bytes, copied to an 8-aligned buffer of exactly
 * their size (so ASan sees any read past them), keyed "key".
 *
 * What must hold: 0, -EBADMSG or -EPROTO; an accepted record's value
 * lies inside the input right after its strings and ends with it, its
 * strings are NUL-terminated with the lengths it gives, the topic name
 * is a topic name and the reason holds no NUL.
 */
#include "fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dlq_format.h"
#include "evbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX)
        return 0;
    uint8_t *v = aligned_alloc(8, size ? (size + 7) / 8 * 8 : 8);
    FUZZ_CHECK(v != NULL, "out of memory");
    memcpy(v, data, size);
    evb_event ev = {.key = "key", .key_len = 3, .value = v, .value_len = (uint32_t)size};
    struct evb_dlq_record r;
    int rc = evb_dlq_decode(&ev, &r);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO, "decode %d", rc);
    if (rc == 0) {
        const uint8_t *p = r.value;
        FUZZ_CHECK(p >= v + EVB_DLQ_HDR_BYTES && p + r.value_len == v + size,
                   "value at %td, %u bytes, of %zu", p - v, r.value_len, size);
        FUZZ_CHECK((size_t)(p - v) == evb_dlq_value_at((uint32_t)strlen(r.origin_topic),
                                                        r.reason_len,
                                                        (uint32_t)strlen(r.rejecter)),
                   "value not right after the strings");
        FUZZ_CHECK(strlen(r.reason) == r.reason_len && r.reason_len <= EVB_DLQ_REASON_MAX,
                   "reason of %u bytes", r.reason_len);
        size_t tl = strlen(r.origin_topic);
        FUZZ_CHECK(tl >= 1 && tl <= EVB_NAME_MAX &&
                       strspn(r.origin_topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789._-") == tl,
                   "topic name '%s'", r.origin_topic);
        FUZZ_CHECK(r.deliveries >= 1 && r.key == ev.key && r.key_len == 3, "fields");
    }
    free(v);
    return 0;
}
