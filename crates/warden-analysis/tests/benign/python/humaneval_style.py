from typing import List
import math
import hashlib


def below_zero(operations: List[int]) -> bool:
    """Whether a running balance that starts at zero ever falls below it.
    >>> below_zero([1, 2, -4, 5])
    True
    """
    balance = 0
    for op in operations:
        balance += op
        if balance < 0:
            return True
    return False


def path_of(parts: List[str]) -> str:
    """Joins parts with slashes: '/' + 'a' + '/' + 'b'."""
    return '/' + '/'.join(parts)


def digest(text: str) -> str:
    return hashlib.md5(text.encode('ascii')).hexdigest() if text else None


def check(candidate):
    assert candidate([]) is False
    assert candidate([1, 2, -3, 1, 2, -3]) is False
    assert candidate([1, -1, 2, -2, 5, -5, 4, -5]) is True
    assert path_of(['tmp', 'x']) == '/tmp/x'
    assert digest('') is None
    assert math.isclose(math.sqrt(2) ** 2, 2.0)


check(below_zero)
