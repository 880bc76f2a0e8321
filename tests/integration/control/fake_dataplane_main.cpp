// fake-dataplane LISTEN [--refuse-nai S]: the FakeDataplane (fake_dataplane.hpp) as a process for
// integration tests. Prints "ready", then one line per acknowledged batch or resync; exits on
// SIGTERM/SIGINT or when stdin closes.
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "fake_dataplane.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LISTEN [--refuse-nai S]\n", argv[0]);
        return 2;
    }
    // Signals are taken by sigwait below, whichever thread gRPC starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    hag::test::FakeDataplane svc;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--refuse-nai") == 0) {
            svc.refuse_nai(argv[i + 1]);
        }
    }
    std::mutex out_mu;
    svc.on_event([&](const std::string& line) {
        std::lock_guard lk(out_mu);
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    });
    auto server = hag::test::start_fake_dataplane(svc, argv[1]);
    if (!server) {
        std::fprintf(stderr, "fake-dataplane: cannot listen on %s\n", argv[1]);
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    std::thread stdin_watch([&] {
        std::string line;
        while (std::getline(std::cin, line)) {
        }
        ::kill(::getpid(), SIGTERM);
    });
    stdin_watch.detach();
    int sig = 0;
    sigwait(&set, &sig);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (std::string(argv[1]).rfind("unix:", 0) == 0) {
        ::unlink(argv[1] + 5);
    }
    return 0;
}
