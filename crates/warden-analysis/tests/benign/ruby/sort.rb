# Merge sort over numbers from stdin; system("rm -rf /") in a comment is text.
def merge_sort(a)
  return a if a.size <= 1
  mid = a.size / 2
  left = merge_sort(a[0...mid])
  right = merge_sort(a[mid..])
  out = []
  out << (left.first <= right.first ? left.shift : right.shift) until left.empty? || right.empty?
  out + left + right
end

nums = $stdin.read.split.map(&:to_i)
puts merge_sort(nums).join(' ')
puts 'exec("/bin/sh")'.length
