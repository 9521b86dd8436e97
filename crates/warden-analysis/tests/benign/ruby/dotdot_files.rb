require "fileutils"
require "json"
FileUtils.mkdir_p("data")
File.write("data/x.json", JSON.dump({a: 1}))
puts JSON.parse(File.read("./data/../data/x.json"))
puts File.exist?("/work/sub/file")
Dir.glob("data/*").each { |f| puts File.basename(f) }
