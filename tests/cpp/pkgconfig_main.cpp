/*
 * pkgconfig_main.cpp - what a user builds against an installed evbus with
 * `c++ -std=c++17 app.cpp $(pkg-config --cflags --libs evbus)`:
 * test_pkgconfig.sh compiles and runs it. Exit 0 when the one event it
 * publishes comes back.
 */
#include <evbus.hpp>

#include <cstdio>
#include <string>

int main(int argc, char **argv)
{
    using namespace std::chrono_literals;
    if (argc != 2)
        return 2;
    try {
        evbus::Bus bus(argv[1]);
        evbus::TopicConfig cfg{};
        cfg.partitions = 2;
        bus.create_topic("hello", cfg);
        auto c = evbus::Consumer::named(bus, "hello", "reader");
        evbus::Producer p(bus, "hello");
        if (!p.publish("greeting", "hello from C++"))
            return 1;
        for (const evbus::Event &ev : c.events(100ms))
            if (ev.value().str() == "hello from C++")
                return c.commit() ? 0 : 1;
    } catch (const evbus::error &e) {
        std::fprintf(stderr, "%s\n", e.what());
    }
    return 1;
}
