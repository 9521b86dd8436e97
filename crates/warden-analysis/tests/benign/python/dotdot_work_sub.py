import os, pathlib
p = pathlib.Path("/work/sub"); p.mkdir(parents=True, exist_ok=True)
(p/"file").write_text("abc")
print(open("/work/sub/file").read())
print(pathlib.Path("/tmp/../tmp").exists())
