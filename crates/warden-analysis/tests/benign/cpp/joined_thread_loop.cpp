#include <iostream>
#include <thread>
#include <chrono>
#include <atomic>
int main() {
    std::atomic<bool> stop{false};
    int ticks = 0;
    while (true) {
        std::thread t([&]{ ++ticks; });
        t.join();
        if (ticks >= 3) break;
    }
    std::cout << ticks << "\n";
}
