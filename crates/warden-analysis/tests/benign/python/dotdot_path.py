import os
os.makedirs("data", exist_ok=True)
with open("data/x.txt","w") as f: f.write("hello\n")
print(open("./data/../data/x.txt").read().strip())
print(open("/work/data/x.txt").read().strip() if os.path.exists("/work/data/x.txt") else "nowork")
