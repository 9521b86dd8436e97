import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price: float
    tags: list = field(default_factory=list)


class Inventory:
    def __init__(self):
        self.items = {}
        self.by_tag = defaultdict(list)

    def add(self, item: Item):
        self.items[item.name] = item
        for tag in item.tags:
            self.by_tag[tag].append(item.name)

    def total(self):
        return sum(i.price for i in self.items.values())

    def words(self, text):
        return Counter(w.strip(".,").lower() for w in text.split())


inv = Inventory()
while True:
    try:
        line = input()
    except EOFError:
        break
    name, price, *tags = line.split()
    inv.add(Item(name, float(price), tags))
debug = os.environ.get("DEBUG") == "1"
print(f"{len(inv.items)} items, total {inv.total():.2f}")
print(inv.words("The cat and the hat").most_common(2))
