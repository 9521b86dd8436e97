# Names of code execution used as ordinary methods, functions and arguments.
class Model:
    def eval(self):
        return self

    def train(self, steps=1, **options):
        return steps, options


class Frame:
    def eval(self, expression):
        return expression


model = Model()
model.eval()
model.train(exec=True)
print(Frame().eval("x + y"))

import sys

print('~' * 40)
frozen = getattr(sys, 'frozen', False)
encoding = getattr(sys.stdout, 'encoding', 'utf-8')
notes = '~/' + 'notes.txt'
print(frozen, encoding, notes)
