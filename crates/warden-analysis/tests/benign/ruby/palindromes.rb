# Collects the reversed words and the palindromes of a list, building the lists by send.
words = %w[level ruby racecar stats kayak gem]
reversed = []
palindromes = []
words.each do |w|
  reversed.send(:push, w.reverse)
  palindromes.public_send(:<<, w) if w == w.reverse
end
codes = words.map { |w| w.unpack("C*").sum }
puts reversed.inspect
puts palindromes.join(", ")
puts codes.inspect
