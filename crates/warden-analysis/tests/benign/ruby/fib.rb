fib = Hash.new { |h, n| h[n] = n < 2 ? n : h[n - 1] + h[n - 2] }
n = (gets || '10').to_i
(0..n).each { |i| puts "fib(#{i}) = #{fib[i]}" }
count = 0
loop do
  count += 1
  break if count > 3
end
