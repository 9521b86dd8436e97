#include <algorithm>
#include <iostream>
#include <iterator>
#include <vector>

// Reads integers and prints them sorted; std::system("rm -rf /") in a comment is text.
int main() {
    std::vector<long long> v{std::istream_iterator<long long>(std::cin), std::istream_iterator<long long>()};
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    for (std::size_t i = 0; i < v.size(); ++i) std::cout << v[i] << (i + 1 < v.size() ? ' ' : '\n');
    std::cout << std::string("fork(); execl(\"/bin/sh\")").size() << '\n';
}
