class Account
  attr_reader :owner, :balance

  def initialize(owner, balance = 0)
    @owner = owner
    @balance = balance
  end

  def deposit(amount)
    raise ArgumentError, 'negative' if amount.negative?
    @balance += amount
    self
  end

  def to_s
    format('%-10s %8.2f', owner, balance)
  end
end

accounts = %w[alice bob carol].map { |name| Account.new(name) }
accounts.each_with_index { |a, i| a.deposit(i * 10.5) }
accounts.sort_by(&:balance).reverse.each { |a| puts a }
words = 'the quick brown the lazy the'.split.tally
puts words.max_by { |_, c| c }.inspect
