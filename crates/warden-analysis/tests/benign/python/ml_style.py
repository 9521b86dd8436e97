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
