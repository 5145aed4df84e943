/*
 * test_evbus_hpp.cpp - the C++ wrappers (bindings/cpp/evbus.hpp) against a
 * real bus: publish and consume through every reader kind, claims that
 * abort when dropped, errors as exceptions with errno and detail, moved-from
 * handles, and that destructors leave no slot taken (LeakSanitizer checks
 * the heap in the ASan build). A plain main: each check prints what failed
 * and the program exits 1.
 */
#include <evbus.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;

static int failures;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                         #cond);                                                  \
            failures++;                                                           \
        }                                                                         \
    } while (0)

/* Runs F, which must throw evbus::error with errno ERR; returns its what(). */
template <class F>
static std::string expect_error(int err, F &&f, int line)
{
    try {
        f();
    } catch (const evbus::error &e) {
        if (e.errno_value() != err || e.code() != std::error_code(err, std::generic_category())) {
            std::fprintf(stderr, "%s:%d: errno %d, expected %d (%s)\n", __FILE__, line,
                         e.errno_value(), err, e.what());
            failures++;
        }
        return e.what();
    }
    std::fprintf(stderr, "%s:%d: no exception, expected errno %d\n", __FILE__, line, err);
    failures++;
    return "";
}
#define EXPECT_ERROR(err, ...) expect_error(err, [&] { __VA_ARGS__; }, __LINE__)

static bool contains(const std::string &s, const char *part)
{
    return s.find(part) != std::string::npos;
}

/* Slots taken on every partition of TOPIC: producers and readers. */
static uint32_t slots(const evbus::Bus &bus, const std::string &topic)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < bus.topic_config(topic).partitions; p++) {
        evbus::PartitionStat st = bus.partition_stat(topic, p);
        n += st.producers + st.readers;
    }
    return n;
}

static evb_topic_config topic_cfg(uint32_t partitions)
{
    evb_topic_config cfg{};
    cfg.partitions = partitions;
    cfg.ring_bytes = 1 << 20;
    return cfg;
}

/* Every kind of reader sees what the producer paths publish: single,
 * keyed to a partition, a batch and a claim, in order per partition. */
static void publish_and_consume(evbus::Bus &bus)
{
    bus.create_topic("orders", topic_cfg(2));
    auto sub = evbus::Consumer::subscriber(bus, "orders");
    auto lossless = evbus::Consumer::lossless_subscriber(bus, "orders");
    auto named = evbus::Consumer::named(bus, "orders", "billing");
    std::set<uint32_t> assigned;
    auto member = evbus::Consumer::group_member(
        bus, "orders", "workers", [&](evbus::Consumer &c, evb_rebalance what, evbus::Partitions ps) {
            if (what == EVB_PARTITIONS_ASSIGNED)
                for (uint32_t p : ps)
                    assigned.insert(p);
            CHECK(c.assignment().size() >= ps.size());
        });
    CHECK((assigned == std::set<uint32_t>{0, 1}));
    auto queue = evbus::Consumer::queue_member(bus, "orders", "jobs");

    evbus::Producer p(bus, "orders");
    const int n = 40;
    std::vector<std::string> sent;
    for (int i = 0; i < n; i++)
        sent.push_back("value-" + std::to_string(i));
    for (int i = 0; i < 10; i++)
        CHECK(p.publish(sent[i]));
    for (int i = 10; i < 20; i++)
        CHECK(p.publish("key-" + std::to_string(i % 3), sent[i], i % 2));
    evbus::Batch b;
    std::vector<std::byte> raw[10];
    for (int i = 20; i < 30; i++) {
        const std::string &s = sent[i];
        raw[i - 20].resize(s.size());
        std::memcpy(raw[i - 20].data(), s.data(), s.size());
        b.add(evbus::Message(raw[i - 20]).type(7));
    }
    CHECK(p.publish(b) == 10);
    for (int i = 30; i < n; i++) {
        auto c = p.claim(sent[i].size(), "claimed", 0);
        CHECK(c.has_value());
        if (!c)
            continue;
        CHECK(c->value().size() == sent[i].size());
        CHECK(reinterpret_cast<uintptr_t>(c->value().data()) % 8 == 0);
        std::memcpy(c->value().data(), sent[i].data(), sent[i].size());
        c->commit();
        CHECK(!*c);
    }

    /* Each reader: every value once, offsets dense per partition. */
    auto drain = [&](evbus::Consumer &c, const char *who) {
        std::multiset<std::string> got;
        std::map<uint32_t, uint64_t> next_offset;
        for (const evbus::Event &ev : c.events(200ms)) {
            got.insert(std::string(ev.value().str()));
            uint64_t &want = next_offset.try_emplace(ev.partition(), ev.offset()).first->second;
            CHECK(ev.offset() == want);
            want = ev.offset() + 1;
            CHECK(ev.lost_events() == 0);
            if (ev.key().str() == "claimed")
                CHECK(ev.partition() == 0);
            if (ev.type() == 7)
                CHECK(ev.key().empty());
            if (c.get() == queue.get())
                CHECK(c.ack(ev));
        }
        std::multiset<std::string> want(sent.begin(), sent.end());
        if (got != want) {
            std::fprintf(stderr, "%s: %zu events, expected %zu\n", who, got.size(), want.size());
            failures++;
        }
    };
    drain(sub, "subscriber");
    drain(lossless, "lossless subscriber");
    drain(named, "named consumer");
    drain(member, "group member");
    drain(queue, "queue member");
    CHECK(named.commit());
    CHECK(member.commit());
    CHECK(!queue.next(0ms));

    /* poll() hands a batch to a lambda; an exception thrown there comes out. */
    for (int i = 0; i < 5; i++)
        CHECK(p.publish("polled"));
    int polled = 0;
    CHECK(sub.poll([&](const evbus::Event &ev) { polled += ev.value().str() == "polled"; }) == 5);
    CHECK(polled == 5);
    CHECK(p.publish("boom"));
    bool thrown = false;
    try {
        lossless.poll([](const evbus::Event &) { throw std::runtime_error("from the callback"); });
    } catch (const std::runtime_error &e) {
        thrown = std::string(e.what()) == "from the callback";
    }
    CHECK(thrown);

    /* Queue: a nacked event comes back with deliveries 2; once acked it is
     * no longer this member's. */
    while (queue.next(0ms)) {
    }
    CHECK(p.publish("retry-me"));
    auto ev = queue.next(1s);
    CHECK(ev && ev->value().str() == "retry-me" && ev->deliveries() == 1);
    if (ev)
        CHECK(queue.nack(*ev));
    ev = queue.next(1s);
    CHECK(ev && ev->value().str() == "retry-me" && ev->deliveries() == 2);
    if (ev) {
        evb_event copy = ev->raw();
        CHECK(queue.ack(*ev));
        CHECK(!queue.ack(evbus::Event(copy)));
    }

    /* Seek: the named consumer reads the topic again from the start. */
    named.seek(evbus::all_partitions, EVB_START_EARLIEST);
    auto first = named.next(1s);
    CHECK(first && first->offset() == 0);
}

/* A claim dropped without commit aborts: readers skip it, and count it. */
static void claim_aborts(evbus::Bus &bus)
{
    bus.create_topic("claims", topic_cfg(1));
    auto c = evbus::Consumer::named(bus, "claims", "audit");
    evbus::Producer p(bus, "claims");
    {
        auto cl = p.claim(16, "dropped");
        CHECK(cl.has_value());
        if (cl)
            std::memset(cl->value().data(), 'x', cl->value().size());
    }
    /* Moving an open claim moves the duty to abort; the moved-from one is
     * empty and does nothing. */
    {
        auto cl = p.claim(8);
        CHECK(cl.has_value());
        if (cl) {
            evbus::Claim moved = std::move(*cl);
            CHECK(!*cl && moved);
            CHECK(cl->value().empty());
            EXPECT_ERROR(EINVAL, cl->commit());
        }
    }
    CHECK(p.publish("kept"));
    auto ev = c.next(1s);
    CHECK(ev && ev->value().str() == "kept");
    CHECK(ev && ev->offset() == 2); /* the aborted ones keep their offsets */
    CHECK(!c.next(0ms));
    evbus::PartitionStat st = bus.partition_stat("claims", 0);
    CHECK(st.aborted == 2);
    CHECK(st.published == 1);
}

/* A stable producer's republish under an old sequence (Message::seq) is
 * dropped by a deduplicating reader, and counted. */
static void dedup(evbus::Bus &bus)
{
    bus.create_topic("dedup", topic_cfg(1));
    evbus::ConsumerOptions co{};
    co.flags = EVB_CONSUMER_DEDUP;
    auto c = evbus::Consumer::named(bus, "dedup", "once", co);
    evbus::ProducerOptions po{};
    po.producer_id = EVB_PRODUCER_ID_STABLE | 3;
    evbus::Producer p(bus, "dedup", po);
    CHECK(!p.last_seq(0));
    CHECK(p.publish(evbus::Message("first").partition(0)));
    CHECK(p.publish(evbus::Message("copy of first").partition(0).seq(0)));
    CHECK(p.publish(evbus::Message("second").partition(0)));
    CHECK(p.last_seq(0) == 1u);
    std::vector<std::string> got;
    for (const evbus::Event &ev : c.events(100ms))
        got.emplace_back(ev.value().str());
    CHECK((got == std::vector<std::string>{"first", "second"}));
    CHECK(c.dedup_stat().dropped == 1);
    CHECK(c.skipped().events == 0);
    auto plain = evbus::Consumer::subscriber(bus, "dedup");
    EXPECT_ERROR(EINVAL, plain.dedup_stat());
}

/* Errors throw evbus::error with the errno and the library's words. */
static void errors(evbus::Bus &bus)
{
    std::string what = EXPECT_ERROR(ENOENT, evbus::Consumer::subscriber(bus, "no-such-topic"));
    CHECK(contains(what, "no-such-topic"));
    CHECK(contains(what, evb_strerror(-ENOENT)));

    bus.create_topic("errs", topic_cfg(1));
    CHECK(!bus.ensure_topic("errs"));
    what = EXPECT_ERROR(EEXIST, bus.create_topic("errs"));
    CHECK(contains(what, "errs"));
    evb_topic_config bad = topic_cfg(1);
    bad.partitions = EVB_MAX_PARTITIONS + 1;
    what = EXPECT_ERROR(EINVAL, bus.create_topic("bad", bad));
    CHECK(contains(what, "(")); /* the evb_last_error() detail */

    evbus::Producer p(bus, "errs");
    std::string big(bus.topic_config("errs").max_event_bytes + 1, 'b');
    EXPECT_ERROR(EMSGSIZE, (void)p.publish(big));
    EXPECT_ERROR(EINVAL, (void)p.publish("k", "v", 5));

    auto n1 = evbus::Consumer::named(bus, "errs", "solo");
    what = EXPECT_ERROR(EINVAL, evbus::Consumer::named(bus, "errs", "bad name!"));
    CHECK(contains(what, "errs") && contains(what, "("));
    auto sub = evbus::Consumer::subscriber(bus, "errs");
    EXPECT_ERROR(EINVAL, sub.commit());

    /* An exception from a rebalance callback comes out of the open that
     * ran it, and the half-made member is closed (main checks the slots). */
    bool threw = false;
    try {
        auto g = evbus::Consumer::group_member(
            bus, "errs", "throwing", [](evbus::Consumer &, evb_rebalance, evbus::Partitions) {
                throw std::logic_error("refused");
            });
    } catch (const std::logic_error &e) {
        threw = std::string(e.what()) == "refused";
    }
    CHECK(threw);

    /* Would-block and timeouts are results, not exceptions. */
    CHECK(!sub.next(0ms));
    CHECK(!sub.next(10ms));
    evb_producer_options po{};
    evbus::Producer nonblock(bus, "errs", po);
    uint64_t published = 0;
    while (nonblock.publish(std::string(1000, 'f')))
        published++; /* n1 never reads: the ring fills */
    CHECK(published > 0);
    CHECK(!nonblock.claim(1000));
    std::string fill(1000, 'f');
    CHECK(nonblock.publish(evbus::Batch().add(fill)) == 0);

    bool caught_as_system_error = false;
    try {
        bus.delete_topic("no-such-topic");
    } catch (const std::system_error &e) {
        caught_as_system_error = e.code() == std::errc::no_such_file_or_directory;
    }
    CHECK(caught_as_system_error);
}

/* Moved-from handles are empty: destroying them is harmless, using them
 * throws EINVAL, and the moved-to handle works. */
static void moved_from(evbus::Bus &bus)
{
    bus.create_topic("moves", topic_cfg(1));
    evbus::Producer p(bus, "moves");
    evbus::Producer p2 = std::move(p);
    CHECK(!p && p2);
    EXPECT_ERROR(EINVAL, (void)p.publish("x"));
    EXPECT_ERROR(EINVAL, (void)p.claim(8));
    p = std::move(p2);
    CHECK(p && !p2);

    auto c = evbus::Consumer::lossless_subscriber(bus, "moves");
    evbus::Consumer c2(std::move(c));
    CHECK(!c && c2);
    EXPECT_ERROR(EINVAL, c.next(0ms));
    EXPECT_ERROR(EINVAL, c.events(0ms));
    CHECK(p.publish("after the move"));
    auto ev = c2.next(1s);
    CHECK(ev && ev->value().str() == "after the move");
    c = std::move(c2);
    CHECK(c && !c2);

    /* A group member's callback follows its consumer when it moves. */
    int calls = 0;
    evbus::Consumer *seen = nullptr;
    auto m = evbus::Consumer::group_member(
        bus, "moves", "g", [&](evbus::Consumer &self, evb_rebalance, evbus::Partitions) {
            calls++;
            seen = &self;
        });
    CHECK(calls == 1);
    evbus::Consumer m2 = std::move(m);
    auto m3 = evbus::Consumer::group_member(bus, "moves", "g");
    /* m3 takes nothing from m2 (one partition, already owned); m2 keeps it.
     * Its next calls tick the group; the callback, if any, sees m2. */
    (void)m2.next(0ms);
    CHECK(calls == 1 || seen == &m2);
    CHECK(m2.assignment().size() + m3.assignment().size() <= 1);

    evbus::Bus b2 = std::move(bus);
    CHECK(!bus && b2);
    EXPECT_ERROR(EINVAL, bus.topics());
    bus = std::move(b2);
}

/* Handles outliving their Bus object still work (shared ownership), and
 * when they go every slot is free again. */
static void raii(const std::string &dir)
{
    {
        evbus::Bus bus(dir);
        bus.create_topic("raii", topic_cfg(4));
    }
    std::optional<evbus::Producer> p;
    std::optional<evbus::Consumer> c;
    {
        evbus::Bus bus(dir);
        p.emplace(bus, "raii");
        c.emplace(evbus::Consumer::named(bus, "raii", "r"));
    } /* the Bus object dies first */
    CHECK(p->publish("k", "v", 3));
    auto ev = c->next(1s);
    CHECK(ev && ev->partition() == 3);
    evbus::Bus bus(dir);
    CHECK(slots(bus, "raii") == 4 + 1); /* reader on every ring, producer on one */
    p.reset();
    c.reset();
    CHECK(slots(bus, "raii") == 0);
    auto topics = bus.topics();
    CHECK(std::find(topics.begin(), topics.end(), "raii") != topics.end());
    bus.delete_topic("raii");
}

int main()
{
    char tmpl[] = "/dev/shm/evbus-cpp-XXXXXX";
    if (!mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 1;
    }
    std::string dir = tmpl;
    try {
        evbus::Bus bus(dir);
        CHECK(bus.path() == dir);
        publish_and_consume(bus);
        claim_aborts(bus);
        dedup(bus);
        errors(bus);
        moved_from(bus);
        raii(dir);
        for (const char *t : {"orders", "claims", "dedup", "errs", "moves"})
            CHECK(slots(bus, t) == 0);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        failures++;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (failures)
        std::fprintf(stderr, "%d checks failed\n", failures);
    return failures ? 1 : 0;
}
