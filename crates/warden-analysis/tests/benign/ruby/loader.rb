# A program split over files, loaded the way Ruby projects do.
require File.join(__dir__, 'account')
require File.expand_path('fib', __dir__)

def total(accounts)
  accounts.sum(&:balance)
end

puts total([])
