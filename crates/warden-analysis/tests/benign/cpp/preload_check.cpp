// Warns when the dynamic loader injected a library into this process.
#include <cstdlib>
#include <iostream>
#include <string>

int main() {
    int found = 0;
    if (const char *preload = std::getenv("LD_PRELOAD")) {
        std::cerr << "preloaded: " << std::string(preload) << '\n';
        found = 1;
    }
    if (std::getenv("LD_AUDIT") != nullptr) {
        std::cerr << "audited\n";
        found = 1;
    }
    unsetenv("LD_PRELOAD");
    unsetenv("LD_AUDIT");
    return found;
}
