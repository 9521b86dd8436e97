#include <fstream>
#include <iostream>
#include <filesystem>
#include <string>
namespace fs = std::filesystem;
int main() { fs::create_directories("data"); { std::ofstream o("data/x.txt"); o << "line1\nline2\n"; } std::ifstream i("./data/../data/x.txt"); std::string l; int n = 0; while (std::getline(i, l)) n++; std::cout << n << " " << fs::exists("/work/sub/file") << "\n"; for (auto &e : fs::directory_iterator("data")) std::cout << e.path().filename() << "\n"; }
