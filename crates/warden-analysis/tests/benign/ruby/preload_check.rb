# Warns when the dynamic loader injects a library into this process, then removes the loader's
# variables so that nothing started later inherits them.

def injected
  found = {}
  preload = ENV["LD_PRELOAD"]
  found["preload"] = preload.split(":") if preload
  found["audit"] = ENV.fetch("LD_AUDIT", "").split(":") if ENV.key?("LD_AUDIT")
  found
end

found = injected
found.each do |name, libraries|
  warn "#{name}: #{libraries.join(', ')}"
end
puts "audit module present" if ENV['LD_AUDIT']
ENV.delete("LD_PRELOAD")
ENV.delete("LD_AUDIT")
exit(found.empty? ? 0 : 1)
