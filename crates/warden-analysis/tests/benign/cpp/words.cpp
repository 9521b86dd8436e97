#include <map>
#include <sstream>
#include <string>
#include <iostream>
#include <thread>
#include <functional>

template <typename T>
T fib(int n) {
    T a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        T t = a + b;
        a = b;
        b = t;
    }
    return a;
}

int main() {
    std::map<std::string, int> counts;
    std::string line, word;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        while (in >> word) ++counts[word];
    }
    for (const auto &[w, c] : counts) std::cout << w << ' ' << c << '\n';
    unsigned long long result = 0;
    std::thread t([&] { result = fib<unsigned long long>(50); });
    t.join();
    std::cout << result << '\n';
    auto add = std::bind(std::plus<int>(), 1, std::placeholders::_1);
    std::cout << add(2) << '\n';
    for (;;) break;
}
