/*
 * evbus.hpp - header-only C++17 RAII wrappers over the C API of evbus.h.
 *
 * Handles (Bus, Producer, Claim, Consumer) own one C handle each, are
 * move-only with noexcept moves, and close it in their destructor; a
 * moved-from or closed handle is empty: destroying it does nothing, using
 * it throws evbus::error(EINVAL). Producers and consumers share ownership
 * of their bus handle, so the C rule "close the bus last" holds whatever
 * order the C++ objects die in. A Claim must not outlive its Producer.
 *
 * Errors are exceptions: evbus::error, a std::system_error whose code()
 * is the errno (generic_category, so `e.code() == std::errc::...` works)
 * and whose what() names the call, the object and the library's detail
 * (evb_last_error(), taken only after calls that reset it, so a stale
 * detail of an earlier failure never shows up). Why exceptions and not
 * std::error_code returns: a constructor cannot return a code, and
 * opening a bus, topic, producer or consumer is where nearly every real
 * failure happens (no such topic, permissions, a damaged file); users of
 * C++ messaging libraries (cppzmq, cppkafka, Aeron's C++ client) expect
 * those to throw, and a forgotten error_code would be silently lost.
 * What is not a failure is not an exception: nothing to read yet or a
 * timeout (next() returns an empty optional, events() ends), a full ring
 * or a publish timeout (publish() returns false, claim() an empty
 * optional), an event or partition that is no longer this member's
 * (ack(), nack() and commit() return false on -ESTALE). So a hot loop never
 * pays for a throw, and the C API stays reachable through get().
 *
 * Views. C++17 has no std::span, so Bytes (read-only) and MutableBytes
 * (a claim's value) are two-word views of std::byte; both give a
 * std::string_view (str()) and, compiled as C++20, convert to
 * std::span<const std::byte> / std::span<std::byte>. Bytes takes anything
 * that converts to std::string_view (literals, std::string) and any
 * contiguous container of one-byte elements (std::vector<std::byte>,
 * std::array<uint8_t, N>, std::span). An Event is a view into the ring
 * (or the consumer's buffer): valid until the next call on its Consumer,
 * as evb_event is; copy out what must live longer.
 *
 * Threads: as the C API (a bus may be shared; a producer or consumer
 * belongs to one thread at a time). No runtime dependency beyond libevbus
 * and the C++ standard library: `c++ -std=c++17 app.cpp $(pkg-config
 * --cflags --libs evbus)`.
 */
#ifndef EVBUS_HPP
#define EVBUS_HPP

#include <evbus.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#endif
#endif
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
#define EVBUS_HPP_SPAN 1
#endif

namespace evbus {

/** Let the producer choose the partition. */
inline constexpr int32_t any_partition = EVB_PARTITION_ANY;
/** seek(), skipped(): every partition the consumer reads. */
inline constexpr int32_t all_partitions = -1;
/** A timeout that never expires. */
inline constexpr std::chrono::milliseconds forever{-1};

/* The C option and report structs, by C++ names (zero-initialise with {},
 * zero means default, then set fields). Some C struct tags share their
 * function's name, hence the aliases. */
using BusOptions = evb_bus_options;
using TopicConfig = evb_topic_config;
using ProducerOptions = evb_producer_options;
using ConsumerOptions = evb_consumer_options;
using PartitionStat = struct ::evb_partition_stat;

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

/** A failed call: code() is the errno (positive, generic_category). */
class error : public std::system_error {
public:
    error(int errno_value, const std::string &what)
        : std::system_error(errno_value, std::generic_category(), what)
    {
    }
    /** The errno, positive (the C API returned its negative). */
    int errno_value() const noexcept { return code().value(); }
};

namespace detail {

/* Throw for RC (negative errno). WITH_DETAIL only after a call that
 * resets evb_last_error() on entry: other calls leave it untouched, so
 * what it holds may belong to an earlier failure. */
[[noreturn]] inline void fail(int rc, const std::string &what, bool with_detail)
{
    std::string msg = "evbus: " + what + ": " + evb_strerror(rc);
    const char *d = with_detail ? evb_last_error() : "";
    if (d && *d)
        msg += std::string(" (") + d + ")";
    throw error(-rc, msg);
}

[[noreturn]] inline void closed(const char *what)
{
    throw error(EINVAL, std::string("evbus: ") + what + ": closed or moved-from handle");
}

inline int32_t to_ms(std::chrono::milliseconds t) noexcept
{
    if (t.count() < 0)
        return -1;
    if (t.count() > std::numeric_limits<int32_t>::max())
        return std::numeric_limits<int32_t>::max();
    return static_cast<int32_t>(t.count());
}

inline uint32_t to_len(std::size_t n, const char *what)
{
    if (n > std::numeric_limits<uint32_t>::max())
        throw error(EMSGSIZE, std::string("evbus: ") + what + ": more than 4 GiB");
    return static_cast<uint32_t>(n);
}

template <class R, class = void>
struct is_byte_range : std::false_type {};
template <class R>
struct is_byte_range<R, std::void_t<decltype(std::data(std::declval<const R &>())),
                                    decltype(std::size(std::declval<const R &>()))>>
    : std::bool_constant<
          sizeof(*std::data(std::declval<const R &>())) == 1 &&
          std::is_trivially_copyable_v<
              std::remove_pointer_t<decltype(std::data(std::declval<const R &>()))>> &&
          !std::is_convertible_v<const R &, std::string_view>> {};

} // namespace detail

/* ------------------------------------------------------------------ */
/* Views                                                              */
/* ------------------------------------------------------------------ */

/** A read-only view of bytes (a key or value). */
class Bytes {
public:
    constexpr Bytes() noexcept = default;
    constexpr Bytes(const void *data, std::size_t size) noexcept
        : data_(static_cast<const std::byte *>(data)), size_(size)
    {
    }
    /** Text: literals, std::string, std::string_view. */
    template <class S, std::enable_if_t<std::is_convertible_v<const S &, std::string_view>, int> = 0>
    Bytes(const S &s) noexcept(noexcept(std::string_view(s)))
        : Bytes(std::string_view(s).data(), std::string_view(s).size())
    {
    }
    /** A contiguous container of one-byte elements. */
    template <class R, std::enable_if_t<detail::is_byte_range<R>::value, int> = 0>
    Bytes(const R &r) noexcept : Bytes(std::data(r), std::size(r))
    {
    }

    const std::byte *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const std::byte *begin() const noexcept { return data_; }
    const std::byte *end() const noexcept { return data_ + size_; }
    std::byte operator[](std::size_t i) const noexcept { return data_[i]; }
    std::string_view str() const noexcept
    {
        return {reinterpret_cast<const char *>(data_), size_};
    }
#ifdef EVBUS_HPP_SPAN
    std::span<const std::byte> span() const noexcept { return {data_, size_}; }
    operator std::span<const std::byte>() const noexcept { return span(); }
#endif

private:
    const std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

/** A writable view of bytes: a claim's value, to fill in place. */
class MutableBytes {
public:
    constexpr MutableBytes() noexcept = default;
    constexpr MutableBytes(void *data, std::size_t size) noexcept
        : data_(static_cast<std::byte *>(data)), size_(size)
    {
    }
    std::byte *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::byte *begin() const noexcept { return data_; }
    std::byte *end() const noexcept { return data_ + size_; }
    std::byte &operator[](std::size_t i) const noexcept { return data_[i]; }
#ifdef EVBUS_HPP_SPAN
    std::span<std::byte> span() const noexcept { return {data_, size_}; }
    operator std::span<std::byte>() const noexcept { return span(); }
#endif

private:
    std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

/** A delivered event: a view valid until the next call on its Consumer. */
class Event {
public:
    explicit Event(const evb_event &e) noexcept : e_(e) {}
    Bytes key() const noexcept { return {e_.key, e_.key_len}; }
    Bytes value() const noexcept { return {e_.value, e_.value_len}; }
    uint32_t partition() const noexcept { return e_.partition; }
    uint64_t offset() const noexcept { return e_.offset; }
    uint64_t position() const noexcept { return e_.position; }
    uint64_t timestamp_ns() const noexcept { return e_.timestamp_ns; }
    uint16_t type() const noexcept { return e_.type; }
    uint16_t flags() const noexcept { return e_.flags; }
    uint32_t producer_id() const noexcept { return e_.producer_id; }
    uint64_t producer_seq() const noexcept { return e_.producer_seq; }
    /** Queue and group members: times delivered (evb_event.deliveries). */
    uint32_t deliveries() const noexcept { return e_.deliveries; }
    uint64_t lost_events() const noexcept { return e_.lost_events; }
    uint64_t lost_bytes() const noexcept { return e_.lost_bytes; }
    const evb_event &raw() const noexcept { return e_; }

private:
    evb_event e_;
};

/** A partition list handed to a rebalance callback. */
class Partitions {
public:
    Partitions(const uint32_t *p, std::size_t n) noexcept : p_(p), n_(n) {}
    const uint32_t *begin() const noexcept { return p_; }
    const uint32_t *end() const noexcept { return p_ + n_; }
    std::size_t size() const noexcept { return n_; }
    uint32_t operator[](std::size_t i) const noexcept { return p_[i]; }

private:
    const uint32_t *p_;
    std::size_t n_;
};

/* ------------------------------------------------------------------ */
/* Bus and topics                                                     */
/* ------------------------------------------------------------------ */

/** An open bus (evb_bus_open); topic management lives here. */
class Bus {
public:
    /** NAME_OR_PATH as evb_bus_open(): "" means EVBUS_BUS, else "default". */
    explicit Bus(const std::string &name_or_path = "", const evb_bus_options *opts = nullptr)
    {
        evb_bus *b = nullptr;
        int rc = evb_bus_open(&b, name_or_path.c_str(), opts);
        if (rc < 0)
            detail::fail(rc, "bus '" + name_or_path + "'", true);
        h_.reset(b, evb_bus_close);
    }
    Bus(const std::string &name_or_path, const evb_bus_options &opts) : Bus(name_or_path, &opts) {}

    Bus(Bus &&) noexcept = default;
    Bus &operator=(Bus &&) noexcept = default;
    Bus(const Bus &) = delete;
    Bus &operator=(const Bus &) = delete;
    ~Bus() = default;

    /** Drop this handle; the C handle closes once no producer or consumer
     *  opened through it is left. */
    void close() noexcept { h_.reset(); }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    evb_bus *get() const noexcept { return h_.get(); }

    std::string_view path() const { return evb_bus_path(need()); }
    std::string_view data_dir() const { return evb_bus_data_dir(need()); }

    /** Create TOPIC; throws -EEXIST among others. */
    void create_topic(const std::string &topic, const evb_topic_config &cfg = {})
    {
        int rc = evb_topic_create(need(), topic.c_str(), &cfg);
        if (rc < 0)
            detail::fail(rc, "create topic '" + topic + "'", true);
    }
    /** Create TOPIC unless it exists; true when this call created it. */
    bool ensure_topic(const std::string &topic, const evb_topic_config &cfg = {})
    {
        int rc = evb_topic_create(need(), topic.c_str(), &cfg);
        if (rc == -EEXIST)
            return false;
        if (rc < 0)
            detail::fail(rc, "create topic '" + topic + "'", true);
        return true;
    }
    /** evb_topic_remove(); FLAGS EVB_DELETE_*. */
    void delete_topic(const std::string &topic, uint32_t flags = 0)
    {
        int rc = evb_topic_remove(need(), topic.c_str(), flags);
        if (rc < 0)
            detail::fail(rc, "delete topic '" + topic + "'", true);
    }
    /** The topic's configuration, defaults filled in. */
    evb_topic_config topic_config(const std::string &topic) const
    {
        struct evb_topic_info info {};
        int rc = evb_topic_info(need(), topic.c_str(), &info);
        if (rc < 0)
            detail::fail(rc, "topic '" + topic + "'", true);
        return info.config;
    }
    /** Every topic, in name order. */
    std::vector<std::string> topics() const
    {
        std::vector<std::string> v;
        list_state<std::string> st{&v, {}};
        int rc = evb_topic_list(need(), list_one, &st);
        if (st.ex)
            std::rethrow_exception(st.ex);
        if (rc < 0)
            detail::fail(rc, "list topics", true);
        return v;
    }
    /** The groups of TOPIC, in name order. */
    std::vector<std::string> groups(const std::string &topic) const
    {
        std::vector<std::string> v;
        list_state<std::string> st{&v, {}};
        int rc = evb_group_list(need(), topic.c_str(), list_one, &st);
        if (st.ex)
            std::rethrow_exception(st.ex);
        if (rc < 0)
            detail::fail(rc, "list groups of '" + topic + "'", true);
        return v;
    }
    /** Live counters of one partition. */
    PartitionStat partition_stat(const std::string &topic, uint32_t partition) const
    {
        PartitionStat st{};
        int rc = evb_partition_stat(need(), topic.c_str(), partition, &st);
        if (rc < 0)
            detail::fail(rc, "topic '" + topic + "' partition " + std::to_string(partition),
                         false);
        return st;
    }

private:
    friend class Producer;
    friend class Consumer;
    template <class T>
    struct list_state {
        std::vector<T> *out;
        std::exception_ptr ex;
    };
    static int list_one(const char *name, void *arg) noexcept
    {
        auto *st = static_cast<list_state<std::string> *>(arg);
        try {
            st->out->emplace_back(name);
            return 0;
        } catch (...) {
            st->ex = std::current_exception();
            return 1;
        }
    }
    evb_bus *need() const
    {
        if (!h_)
            detail::closed("bus");
        return h_.get();
    }
    std::shared_ptr<evb_bus> h_;
};

/* ------------------------------------------------------------------ */
/* Producers                                                          */
/* ------------------------------------------------------------------ */

/** One event to publish, with the less common fields (type, flags, seq).
 *  It refers to the key and value bytes: they must outlive the publish. */
class Message {
public:
    Message(Bytes value) : Message(Bytes{}, value) {}
    Message(Bytes key, Bytes value, int32_t partition = any_partition)
    {
        m_.key = key.data();
        m_.key_len = detail::to_len(key.size(), "key");
        m_.value = value.data();
        m_.value_len = detail::to_len(value.size(), "value");
        m_.partition = partition;
    }
    Message &partition(int32_t p) noexcept { return m_.partition = p, *this; }
    Message &type(uint16_t t) noexcept { return m_.type = t, *this; }
    /** EVB_MSG_* (EVB_MSG_SYNC). */
    Message &flags(uint16_t f) noexcept { return m_.flags = f, *this; }
    /** Publish under sequence S (stable producers: EVB_MSG_SEQ). */
    Message &seq(uint64_t s) noexcept
    {
        m_.seq = s;
        m_.flags = static_cast<uint16_t>(m_.flags | EVB_MSG_SEQ);
        return *this;
    }
    const evb_msg &raw() const noexcept { return m_; }

private:
    evb_msg m_{};
};

/** Messages for one evb_publish_batch(); reuse it (clear()) to keep its
 *  memory. Like Message, it refers to the bytes it is given. */
class Batch {
public:
    Batch &add(const Message &m) { return v_.push_back(m.raw()), *this; }
    Batch &add(Bytes value) { return add(Message(value)); }
    Batch &add(Bytes key, Bytes value, int32_t partition = any_partition)
    {
        return add(Message(key, value, partition));
    }
    void clear() noexcept { v_.clear(); }
    std::size_t size() const noexcept { return v_.size(); }
    bool empty() const noexcept { return v_.empty(); }
    const evb_msg *data() const noexcept { return v_.data(); }

private:
    std::vector<evb_msg> v_;
};

class Producer;

/** A reservation in a ring (evb_claim): fill value(), then commit().
 *  Destroyed (or reassigned) without commit() it aborts: readers skip it
 *  and count it aborted. It must not outlive its Producer. */
class Claim {
public:
    Claim(Claim &&o) noexcept : p_(std::exchange(o.p_, nullptr)), c_(o.c_) {}
    Claim &operator=(Claim &&o) noexcept
    {
        if (this != &o) {
            abort();
            p_ = std::exchange(o.p_, nullptr);
            c_ = o.c_;
        }
        return *this;
    }
    Claim(const Claim &) = delete;
    Claim &operator=(const Claim &) = delete;
    ~Claim() { abort(); }

    /** The value's bytes in the ring, 8-byte aligned; writable until
     *  commit() or abort(). */
    MutableBytes value() const noexcept
    {
        return p_ ? MutableBytes(c_.value, c_.value_len) : MutableBytes();
    }
    uint32_t partition() const noexcept { return c_.partition; }
    uint64_t offset() const noexcept { return c_.offset; }
    uint64_t position() const noexcept { return c_.position; }
    /** Still open: neither committed nor aborted. */
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /** Publish it. Throws -ECANCELED when the claim was padded because the
     *  producer stalled past stall_ms: the event was not published. */
    void commit()
    {
        if (!p_)
            detail::closed("claim");
        int rc = evb_commit(std::exchange(p_, nullptr), &c_);
        if (rc < 0)
            detail::fail(rc, "commit claim at offset " + std::to_string(c_.offset), false);
    }
    /** Give it up (nothing when already committed or aborted). A claim
     *  already padded (-ECANCELED) is gone either way, so nothing to
     *  report. */
    void abort() noexcept
    {
        if (p_)
            (void)evb_abort(std::exchange(p_, nullptr), &c_);
    }

private:
    friend class Producer;
    Claim(evb_producer *p, const struct evb_claim &c) noexcept : p_(p), c_(c) {}
    evb_producer *p_;
    struct evb_claim c_;
};

/** A producer on one topic (evb_producer_open). */
class Producer {
public:
    Producer(const Bus &bus, const std::string &topic, const evb_producer_options &opts = {})
        : bus_(bus.h_)
    {
        int rc = evb_producer_open(&h_, bus.need(), topic.c_str(), &opts);
        if (rc < 0)
            detail::fail(rc, "producer on '" + topic + "'", true);
    }
    Producer(Producer &&o) noexcept
        : bus_(std::move(o.bus_)), h_(std::exchange(o.h_, nullptr))
    {
    }
    Producer &operator=(Producer &&o) noexcept
    {
        if (this != &o) {
            close();
            h_ = std::exchange(o.h_, nullptr);
            bus_ = std::move(o.bus_);
        }
        return *this;
    }
    Producer(const Producer &) = delete;
    Producer &operator=(const Producer &) = delete;
    ~Producer() { close(); }

    void close() noexcept
    {
        evb_producer_close(std::exchange(h_, nullptr));
        bus_.reset();
    }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    evb_producer *get() const noexcept { return h_; }

    /** Publish one event; false when the ring stayed full (block_ms 0:
     *  -EAGAIN; else -ETIMEDOUT). Throws on anything else. */
    [[nodiscard]] bool publish(const Message &m)
    {
        int rc = evb_publish(need(), &m.raw());
        if (rc == 0)
            return true;
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return false;
        detail::fail(rc, "publish", false);
    }
    [[nodiscard]] bool publish(Bytes value) { return publish(Message(value)); }
    [[nodiscard]] bool publish(Bytes key, Bytes value, int32_t partition = any_partition)
    {
        return publish(Message(key, value, partition));
    }
    /** Publish a batch; returns how many were published (0 when the ring
     *  stayed full). Throws when none was for another reason. */
    std::size_t publish(const Batch &b)
    {
        int rc = evb_publish_batch(need(), b.data(), b.size());
        if (rc >= 0)
            return static_cast<std::size_t>(rc);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return 0;
        detail::fail(rc, "publish batch", false);
    }

    /** Reserve VALUE_LEN bytes (the key is copied now); empty when the
     *  ring stayed full. One open claim per producer at a time. */
    [[nodiscard]] std::optional<Claim> claim(std::size_t value_len, Bytes key = {},
                                             int32_t partition = any_partition)
    {
        struct evb_claim c{};
        int rc = evb_claim(need(), partition, key.data(), detail::to_len(key.size(), "key"),
                           detail::to_len(value_len, "value"), &c);
        if (rc == 0)
            return Claim(h_, c);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return std::nullopt;
        detail::fail(rc, "claim", false);
    }

    /** Durable topics: wait until what was published is on disk; false on
     *  timeout. */
    bool sync(std::chrono::milliseconds timeout = forever)
    {
        int rc = evb_producer_sync(need(), detail::to_ms(timeout));
        if (rc == 0)
            return true;
        if (rc == -ETIMEDOUT)
            return false;
        detail::fail(rc, "sync", false);
    }
    /** The highest sequence published to PARTITION; empty when none. */
    std::optional<uint64_t> last_seq(uint32_t partition)
    {
        uint64_t s = 0;
        int rc = evb_producer_last_seq(need(), partition, &s);
        if (rc == 0)
            return s;
        if (rc == -ENOENT)
            return std::nullopt;
        detail::fail(rc, "last sequence of partition " + std::to_string(partition), false);
    }

private:
    evb_producer *need() const
    {
        if (!h_)
            detail::closed("producer");
        return h_;
    }
    std::shared_ptr<evb_bus> bus_;
    evb_producer *h_ = nullptr;
};

/* ------------------------------------------------------------------ */
/* Consumers                                                          */
/* ------------------------------------------------------------------ */

class Consumer;

/** Group members: told of partitions ASSIGNED, about to be REVOKED (it
 *  may still commit them) or LOST. It may call commit(), assignment() and
 *  seek() on the consumer, not next(), poll() or close(). An exception it
 *  throws comes out of the call that ran it (open, next, poll). */
using RebalanceFn = std::function<void(Consumer &, evb_rebalance what, Partitions parts)>;

/** A reader of any kind (evb_consumer_open). */
class Consumer {
public:
    /** Any kind, from C options (their name is copied by the open). */
    Consumer(const Bus &bus, const std::string &topic, evb_consumer_options opts,
             RebalanceFn on_rebalance = {})
        : bus_(bus.h_)
    {
        if (on_rebalance) {
            cb_ = std::make_unique<Callback>();
            cb_->fn = std::move(on_rebalance);
            cb_->self = this;
            opts.on_rebalance = trampoline;
            opts.rebalance_arg = cb_.get();
        }
        int rc = evb_consumer_open(&h_, bus.need(), topic.c_str(), &opts);
        if (rc < 0)
            detail::fail(rc, "consumer on '" + topic + "'", true);
        if (cb_ && cb_->ex) {
            /* No destructor runs for a constructor that throws. */
            std::exception_ptr ex = cb_->ex;
            close();
            std::rethrow_exception(ex);
        }
    }

    /** A lossy subscriber: starts at the tail, never slows producers. */
    static Consumer subscriber(const Bus &bus, const std::string &topic,
                               evb_consumer_options opts = {})
    {
        opts.kind = EVB_SUBSCRIBER;
        return Consumer(bus, topic, opts);
    }
    /** A subscriber that gates producers. */
    static Consumer lossless_subscriber(const Bus &bus, const std::string &topic,
                                        evb_consumer_options opts = {})
    {
        opts.kind = EVB_SUBSCRIBER_LOSSLESS;
        return Consumer(bus, topic, opts);
    }
    /** A named consumer (committed cursor persists). */
    static Consumer named(const Bus &bus, const std::string &topic, const std::string &name,
                          evb_consumer_options opts = {})
    {
        opts.kind = EVB_CONSUMER;
        opts.name = name.c_str();
        return Consumer(bus, topic, opts);
    }
    /** A member of partition group GROUP. */
    static Consumer group_member(const Bus &bus, const std::string &topic,
                                 const std::string &group, RebalanceFn on_rebalance = {},
                                 evb_consumer_options opts = {})
    {
        opts.kind = EVB_GROUP_MEMBER;
        opts.name = group.c_str();
        return Consumer(bus, topic, opts, std::move(on_rebalance));
    }
    /** A member of queue group GROUP: ack() or nack() each event. */
    static Consumer queue_member(const Bus &bus, const std::string &topic,
                                 const std::string &group, evb_consumer_options opts = {})
    {
        opts.kind = EVB_QUEUE_MEMBER;
        opts.name = group.c_str();
        return Consumer(bus, topic, opts);
    }

    Consumer(Consumer &&o) noexcept
        : bus_(std::move(o.bus_)), h_(std::exchange(o.h_, nullptr)), cb_(std::move(o.cb_))
    {
        if (cb_)
            cb_->self = this;
    }
    Consumer &operator=(Consumer &&o) noexcept
    {
        if (this != &o) {
            close();
            h_ = std::exchange(o.h_, nullptr);
            bus_ = std::move(o.bus_);
            cb_ = std::move(o.cb_);
            if (cb_)
                cb_->self = this;
        }
        return *this;
    }
    Consumer(const Consumer &) = delete;
    Consumer &operator=(const Consumer &) = delete;
    ~Consumer() { close(); }

    /** Close (a named consumer's uncommitted progress is not committed). */
    void close() noexcept
    {
        evb_consumer_close(std::exchange(h_, nullptr));
        cb_.reset();
        bus_.reset();
    }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    evb_consumer *get() const noexcept { return h_; }

    /** The next event, waiting up to TIMEOUT (0: not at all; forever);
     *  empty when none came. The event is valid until the next call. */
    std::optional<Event> next(std::chrono::milliseconds timeout)
    {
        evb_event ev;
        int rc = evb_consumer_next(need(), &ev, detail::to_ms(timeout));
        rethrow_pending();
        if (rc == 0)
            return Event(ev);
        if (rc == -EAGAIN || rc == -ETIMEDOUT)
            return std::nullopt;
        detail::fail(rc, "next", false);
    }

    /** Hand up to MAX events that are ready now to FN(const Event &),
     *  without blocking; returns how many. An exception from FN stops the
     *  poll and comes out here (the event that threw was delivered). */
    template <class F>
    std::size_t poll(F &&fn, uint32_t max = std::numeric_limits<uint32_t>::max())
    {
        using Fn = std::remove_reference_t<F>;
        struct State {
            Fn *fn;
            std::exception_ptr ex;
        } st{&fn, {}};
        auto each = [](const evb_event *ev, void *arg) noexcept -> int {
            auto *s = static_cast<State *>(arg);
            try {
                (*s->fn)(Event(*ev));
                return 0;
            } catch (...) {
                s->ex = std::current_exception();
                return 1;
            }
        };
        int rc = evb_consumer_poll(need(), each, &st, max);
        if (st.ex)
            std::rethrow_exception(st.ex);
        rethrow_pending();
        if (rc < 0)
            detail::fail(rc, "poll", false);
        return static_cast<std::size_t>(rc);
    }

    /** Range-for over events: each next(TIMEOUT) until one times out.
     *  for (const evbus::Event &ev : c.events(100ms)) ... */
    class EventRange;
    EventRange events(std::chrono::milliseconds timeout);

    /** Named consumers and group members: persist the read position. False
     *  when a group member no longer owned a partition (-ESTALE: the rest
     *  were committed). */
    bool commit()
    {
        int rc = evb_consumer_commit(need());
        rethrow_pending();
        if (rc == 0)
            return true;
        if (rc == -ESTALE)
            return false;
        detail::fail(rc, "commit", false);
    }
    /** Queue members: EV is done. False when it is no longer this
     *  member's (-ESTALE: taken by another after ack_wait, or acked). */
    bool ack(const Event &ev) { return answer(evb_consumer_ack(need(), &ev.raw()), "ack", ev); }
    /** Queue members: deliver EV again after DELAY. False as ack(). */
    bool nack(const Event &ev, std::chrono::milliseconds delay = std::chrono::milliseconds(0))
    {
        uint32_t d = delay.count() <= 0 ? 0u
                     : delay.count() > std::numeric_limits<uint32_t>::max()
                         ? std::numeric_limits<uint32_t>::max()
                         : static_cast<uint32_t>(delay.count());
        return answer(evb_consumer_nack(need(), &ev.raw(), d), "nack", ev);
    }
    /** Send EV to <topic>.dlq with REASON and go on. EV must be the
     *  event just delivered (no call on this consumer since). */
    void reject(const Event &ev, const std::string &reason = "")
    {
        int rc = evb_consumer_reject(need(), &ev.raw(), reason.c_str());
        if (rc < 0)
            detail::fail(rc, "reject " + where(ev), true);
    }
    /** Move the read position of PARTITION (all_partitions: all) per
     *  WHENCE (EVB_START_*, optionally | EVB_SEEK_STRICT) and VALUE. */
    void seek(int32_t partition, uint32_t whence, uint64_t value = 0)
    {
        int rc = evb_consumer_seek(need(), partition, whence, value);
        rethrow_pending();
        if (rc < 0)
            detail::fail(rc, "seek partition " + std::to_string(partition), false);
    }
    /** Bytes published and not yet delivered to this reader. */
    uint64_t lag()
    {
        uint64_t b = 0;
        int rc = evb_consumer_lag(need(), &b);
        if (rc < 0)
            detail::fail(rc, "lag", false);
        return b;
    }
    /** Group members: the partitions owned now. */
    std::vector<uint32_t> assignment()
    {
        uint32_t parts[EVB_MAX_PARTITIONS];
        int rc = evb_consumer_assignment(need(), parts, EVB_MAX_PARTITIONS);
        if (rc < 0)
            detail::fail(rc, "assignment", false);
        return std::vector<uint32_t>(parts, parts + rc);
    }
    /** What evb_consumer_skipped() and evb_consumer_dedup_stat() report. */
    struct Counts {
        uint64_t events = 0, bytes = 0;
    };
    /** EVB_CONSUMER_SKIP_DAMAGE: damage at the end of a durable log that no
     *  event has carried yet (handed over once), for PARTITION or all. */
    Counts skipped(int32_t partition = all_partitions)
    {
        Counts n;
        int rc = evb_consumer_skipped(need(), partition, &n.events, &n.bytes);
        if (rc < 0)
            detail::fail(rc, "skipped", false);
        return n;
    }
    /** EVB_CONSUMER_DEDUP: duplicates dropped and producers forgotten. */
    struct DedupStat {
        uint64_t dropped = 0, evicted = 0;
    };
    DedupStat dedup_stat(int32_t partition = all_partitions)
    {
        DedupStat d;
        int rc = evb_consumer_dedup_stat(need(), partition, &d.dropped, &d.evicted);
        if (rc < 0)
            detail::fail(rc, "dedup stat", false);
        return d;
    }
    /** Events rejected since open. */
    uint64_t rejects()
    {
        uint64_t n = 0;
        int rc = evb_consumer_rejects(need(), &n);
        if (rc < 0)
            detail::fail(rc, "rejects", false);
        return n;
    }

private:
    struct Callback {
        RebalanceFn fn;
        Consumer *self;
        std::exception_ptr ex;
    };
    /* Runs inside a C call on this consumer (open included, before h_ is
     * set): h_ is lent the handle for the callback's own calls. */
    static void trampoline(evb_consumer *c, uint32_t what, const uint32_t *parts, uint32_t n,
                           void *arg) noexcept
    {
        auto *cb = static_cast<Callback *>(arg);
        if (cb->ex)
            return;
        evb_consumer *saved = std::exchange(cb->self->h_, c);
        try {
            cb->fn(*cb->self, static_cast<evb_rebalance>(what), Partitions(parts, n));
        } catch (...) {
            cb->ex = std::current_exception();
        }
        cb->self->h_ = saved;
    }
    void rethrow_pending()
    {
        if (cb_ && cb_->ex)
            std::rethrow_exception(std::exchange(cb_->ex, nullptr));
    }
    static std::string where(const Event &ev)
    {
        return "partition " + std::to_string(ev.partition()) + " position " +
               std::to_string(ev.position());
    }
    bool answer(int rc, const char *what, const Event &ev)
    {
        if (rc == 0)
            return true;
        if (rc == -ESTALE)
            return false;
        detail::fail(rc, std::string(what) + " " + where(ev), false);
    }
    evb_consumer *need() const
    {
        if (!h_)
            detail::closed("consumer");
        return h_;
    }
    std::shared_ptr<evb_bus> bus_;
    evb_consumer *h_ = nullptr;
    std::unique_ptr<Callback> cb_;
};

/** What Consumer::events() returns: an input range of Event. */
class Consumer::EventRange {
public:
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        using pointer = const Event *;
        using reference = const Event &;

        iterator() noexcept = default;
        reference operator*() const noexcept { return *cur_; }
        pointer operator->() const noexcept { return &*cur_; }
        iterator &operator++()
        {
            cur_ = c_->next(t_);
            if (!cur_)
                c_ = nullptr;
            return *this;
        }
        /* Input iterators compare equal only at the end. */
        bool operator==(const iterator &o) const noexcept { return c_ == o.c_; }
        bool operator!=(const iterator &o) const noexcept { return c_ != o.c_; }

    private:
        friend class EventRange;
        iterator(Consumer *c, std::chrono::milliseconds t) : c_(c), t_(t) { ++*this; }
        Consumer *c_ = nullptr;
        std::chrono::milliseconds t_{0};
        std::optional<Event> cur_;
    };
    iterator begin() { return iterator(c_, t_); }
    iterator end() noexcept { return iterator(); }

private:
    friend class Consumer;
    EventRange(Consumer *c, std::chrono::milliseconds t) noexcept : c_(c), t_(t) {}
    Consumer *c_;
    std::chrono::milliseconds t_;
};

inline Consumer::EventRange Consumer::events(std::chrono::milliseconds timeout)
{
    need();
    return EventRange(this, timeout);
}

static_assert(std::is_nothrow_move_constructible_v<Bus> &&
                  std::is_nothrow_move_assignable_v<Bus> &&
                  std::is_nothrow_move_constructible_v<Producer> &&
                  std::is_nothrow_move_assignable_v<Producer> &&
                  std::is_nothrow_move_constructible_v<Claim> &&
                  std::is_nothrow_move_assignable_v<Claim> &&
                  std::is_nothrow_move_constructible_v<Consumer> &&
                  std::is_nothrow_move_assignable_v<Consumer>,
              "evbus handles move without throwing");
static_assert(!std::is_copy_constructible_v<Bus> && !std::is_copy_constructible_v<Producer> &&
                  !std::is_copy_constructible_v<Claim> &&
                  !std::is_copy_constructible_v<Consumer>,
              "evbus handles are move-only");

} // namespace evbus

#endif /* EVBUS_HPP */
