"""Ask a lesson's trained model: `make ask-8 Q="4+4"`, or

    python -m microseq.ask 8 "4+4" "77+85"
    python -m microseq.ask 9 "thursday, may 20, 1982"
    python -m microseq.ask 3 "def "              # how the text goes on
    python -m microseq.ask 11 "raise a [MASK] if the key is not found"
    python -m microseq.ask 8 "4+4" --model DIR   # a model saved elsewhere (--out of a run)

Lessons 3, 8, 9 and 11 save their trained model in their out directory
(runs/lesson-N/ by default); without one, this says which lesson to run.
"""
import argparse
import sys
from pathlib import Path

from microseq.data.text import DataError
from microseq.models.saved import FILE, load

ASKABLE = {3: "a prompt to continue", 8: "an addition such as 4+4", 9: "a date as people write it",
           11: "a sentence with [MASK] where a word is hidden"}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m microseq.ask",
                                     description="Ask the model a lesson trained.")
    parser.add_argument("lesson", type=int, help=f"the lesson: one of {sorted(ASKABLE)}")
    parser.add_argument("questions", nargs="*", help="what to ask, one or more")
    parser.add_argument("--model", type=Path, default=None,
                        help="the directory the lesson saved to (default runs/lesson-N/)")
    args = parser.parse_args(argv)
    if args.lesson not in ASKABLE:
        lessons = ", ".join(str(n) for n in ASKABLE)
        return f"lesson {args.lesson} saves no model to ask; lessons {lessons} do"
    questions = [q for q in args.questions if q]
    if not questions:
        return (f"say what to ask lesson {args.lesson}'s model, {ASKABLE[args.lesson]}: "
                f'make ask-{args.lesson} Q="..."')
    directory = args.model or Path(f"runs/lesson-{args.lesson}")
    if not (directory / FILE).is_file():
        return (f"no trained model in {directory}/: run `make lesson-{args.lesson}` first "
                f"(or `make lesson-{args.lesson} ARGS=--quick` for a quick, rougher one)")
    try:
        answers = load(directory).answer(questions)
    except DataError as e:
        return f"cannot ask that: {e}"
    for question, answer in zip(questions, answers, strict=True):
        print(f"{question}{answer}" if args.lesson == 3 else f"{question} -> {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
