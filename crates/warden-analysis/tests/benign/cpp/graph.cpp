#include <iostream>
#include <queue>
#include <string>
#include <vector>

class Graph {
public:
    explicit Graph(int n) : adj_(n) {}
    void add_edge(int a, int b) {
        adj_[a].push_back(b);
        adj_[b].push_back(a);
    }
    std::vector<int> bfs(int start) const {
        std::vector<int> dist(adj_.size(), -1);
        std::queue<int> q;
        dist[start] = 0;
        q.push(start);
        while (!q.empty()) {
            int u = q.front();
            q.pop();
            for (int v : adj_[u])
                if (dist[v] < 0) {
                    dist[v] = dist[u] + 1;
                    q.push(v);
                }
        }
        return dist;
    }

private:
    std::vector<std::vector<int>> adj_;
};

int main() {
    int n, m;
    if (!(std::cin >> n >> m)) return 0;
    Graph g(n);
    for (int i = 0; i < m; ++i) {
        int a, b;
        std::cin >> a >> b;
        g.add_edge(a, b);
    }
    for (int d : g.bfs(0)) std::cout << d << ' ';
    std::cout << '\n';
}
