# Squares numbers in threads, one at a time, until the counter reaches five.
results = []
i = 0
loop do
  break if i >= 5
  Thread.new(i) { |k| results << k * k }.join
  i += 1
end
puts results.sum
