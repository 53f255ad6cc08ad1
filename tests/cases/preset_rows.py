"""Hand-written rows in each preset's dataset shape (the columns and types of its public schema), with
what the preset must make of them: the prompt ids kept, their references, the rows skipped, and for
code sets a right program per prompt, which must pass the stored tests."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from typing import Any

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"
ROWS: dict[str, list[dict[str, Any]]] = {
    "numinamath-1.5": [
        {
            "problem": "Find $x$ if $2x = 10$.",
            "solution": "$x = \\boxed{5}$.",
            "answer": "5",
            "problem_type": "Algebra",
            "question_type": "math-word-problem",
            "source": "olympiads",
            "synthetic": False,
            "problem_is_valid": "Yes",
            "solution_is_valid": "Yes",
        },
        {
            "problem": "Prove that $\\sqrt 2$ is irrational.",
            "solution": "Suppose ...",
            "answer": "proof",
            "problem_type": "Number Theory",
            "question_type": "proof",
            "source": "olympiads",
            "synthetic": False,
            "problem_is_valid": "Yes",
            "solution_is_valid": "Yes",
        },
    ],
    "numinamath-cot": [
        {
            "source": "synthetic_math",
            "problem": "What is $3^2$?",
            "solution": "We get $\\boxed{9}$.",
            "messages": [
                {"role": "user", "content": "What is $3^2$?"},
                {"role": "assistant", "content": "9"},
            ],
        },
        {
            "source": "olympiads",
            "problem": "Show that 7 is prime.",
            "solution": "It has no divisors.",
            "messages": [],
        },
    ],
    "openr1-math": [
        {
            "problem": "Compute $1+2+3$.",
            "solution": "6",
            "answer": "6",
            "problem_type": "Algebra",
            "question_type": "math-word-problem",
            "source": "olympiads",
            "uuid": "5a1b-77",
            "is_reasoning_complete": [True],
            "generations": ["<think>...</think> 6"],
            "correctness_math_verify": [True],
            "correctness_llama": None,
            "finish_reasons": None,
            "correctness_count": 1,
            "messages": [],
        },
    ],
    "deepscaler": [
        {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "answer": "\\frac{3}{4}", "solution": "..."},
    ],
    "aime": [
        {
            "id": 60,
            "problem": "Find the remainder when $2^{10}$ is divided by 1000.",
            "solution": "...",
            "answer": "24",
            "url": "https://artofproblemsolving.com/wiki/...",
            "year": "2024",
        },
    ],
    "gsm8k": [
        {
            "question": "Tom has 3 apples and buys 1,200 more. How many?",
            "answer": "He has 3 + 1200 = <<3+1200=1203>>1203.\n#### 1,203",
        },
        {"question": "A question without an answer line.", "answer": "It is 4."},
    ],
    "math": [
        {
            "problem": "Simplify $\\sqrt{16}$.",
            "level": "Level 1",
            "type": "Prealgebra",
            "solution": "$\\sqrt{16} = \\boxed{4}$.",
        },
        {
            "problem": "What is $\\dfrac{6}{8}$ in lowest terms?",
            "solution": "It is $\\boxed{\\dfrac{3}{4}}$.",
            "answer": "\\frac{3}{4}",
            "subject": "Prealgebra",
            "level": 1,
            "unique_id": "test/prealgebra/1.json",
        },
    ],
    "taco": [
        {
            "question": "Add two numbers.",
            "solutions": json.dumps([ADD]),
            "starter_code": "",
            "input_output": json.dumps({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]}),
            "difficulty": "EASY",
            "raw_tags": "[]",
            "name": None,
            "source": "codeforces",
            "tags": "[]",
            "skill_types": "[]",
            "url": "https://codeforces.com/problemset/problem/1/A",
            "Expected Auxiliary Space": None,
            "time_limit": "1 second",
            "date": None,
            "picture_num": None,
            "memory_limit": "256 megabytes",
            "Expected Time Complexity": None,
        },
        {
            "question": "Return the larger of a and b.",
            "solutions": "[]",
            "starter_code": "def larger(a, b):\n    ",
            "difficulty": "EASY",
            "source": "codewars",
            "input_output": json.dumps(
                {"fn_name": "larger", "inputs": [[1, 2], [5, 3]], "outputs": [[2], [5]]}
            ),
            "url": "https://www.codewars.com/kata/x",
        },
        {
            "question": "A problem whose tests were lost.",
            "solutions": "[]",
            "starter_code": "",
            "input_output": "",
            "difficulty": "HARD",
            "source": "codechef",
            "url": None,
        },
    ],
    "apps": [
        {
            "problem_id": 4001,
            "question": "Add two numbers.",
            "solutions": json.dumps([ADD]),
            "input_output": json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]}),
            "difficulty": "introductory",
            "url": "https://codeforces.com/problemset/problem/1/A",
            "starter_code": "",
        },
        {
            "problem_id": 4002,
            "question": "Double it.",
            "solutions": "[]",
            "difficulty": "introductory",
            "input_output": json.dumps({"fn_name": "double", "inputs": [[2], [0]], "outputs": [[4], [0]]}),
            "url": "https://www.codewars.com/kata/y",
            "starter_code": "def double(n):\n\t",
        },
    ],
    "codecontests": [
        {
            "name": "1_A. Sum",
            "description": "Print a + b.",
            "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
            "private_tests": {"input": ["5 5\n"], "output": ["10\n"]},
            "generated_tests": {"input": ["0 0\n"], "output": ["0\n"]},
            "source": 2,
            "difficulty": 7,
            "solutions": {"language": [3], "solution": [ADD]},
            "cf_contest_id": 1,
            "cf_index": "A",
            "cf_points": 0.0,
            "cf_rating": 800,
            "cf_tags": ["math"],
            "is_description_translated": False,
            "untranslated_description": "",
            "time_limit": {"seconds": 1, "nanos": 0},
            "memory_limit_bytes": 256000000,
            "input_file": "",
            "output_file": "",
        },
        {
            "name": "2_B. Empty",
            "description": "No tests here.",
            "public_tests": {"input": [], "output": []},
            "private_tests": {"input": [], "output": []},
            "generated_tests": {"input": [], "output": []},
            "source": 2,
            "difficulty": 7,
            "cf_rating": 0,
        },
    ],
    "livecodebench": [
        {
            "question_title": "Two Sum",
            "question_content": "Return indices of two numbers adding to target.",
            "platform": "leetcode",
            "question_id": "1",
            "contest_id": "weekly-1",
            "contest_date": "2023-08-01T00:00:00",
            "difficulty": "easy",
            "starter_code": "class Solution:\n"
            "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n",
            "public_test_cases": json.dumps(
                [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"}]
            ),
            "private_test_cases": base64.b64encode(
                zlib.compress(
                    pickle.dumps(
                        json.dumps([{"input": "[3, 3]\n6", "output": "[0, 1]", "testtype": "functional"}])
                    )
                )
            ).decode(),
            "metadata": json.dumps({"func_name": "twoSum"}),
        },
        {
            "question_title": "Sum",
            "question_content": "Read a and b, print a + b.",
            "platform": "atcoder",
            "question_id": "abc001_a",
            "contest_id": "abc001",
            "contest_date": "2023-09-01T00:00:00",
            "difficulty": "easy",
            "starter_code": "",
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": json.dumps([{"input": "4 4\n", "output": "8\n", "testtype": "stdin"}]),
            "metadata": "{}",
        },
    ],
    "kodcode": [
        {
            "version": "v1.0",
            "style": "instruct",
            "subset": "Leetcode",
            "question_id": "Leetcode_1",
            "question": "Write a function `mean(values)` returning the mean; raise ValueError when empty.",
            "solution": "def mean(values): ...",
            "test": "import pytest\nfrom solution import mean\n\n"
            "def test_mean():\n    assert mean([1, 3]) == 2\n\n"
            "def test_empty():\n    with pytest.raises(ValueError):\n        mean([])\n",
            "test_info": [
                {
                    "function_name": "mean",
                    "parameter_list": "(values)",
                    "function_declaration": "def mean(values):",
                    "docstring": None,
                }
            ],
            "gpt_pass_sequence": [1],
            "gpt_pass_trial_num": 1,
            "gpt_difficulty": "easy",
            "gpt_pass_percentage": 1.0,
            "trials": {},
            "chosen_trial": "trial_gpt4o_0",
            "metadata": {},
            "benchmark_similarity": 0.4,
            "benchmark_instruction": None,
            "benchmark_task_id": None,
            "filter_reason": None,
        },
    ],
    "codeforces": [
        {
            "id": "1/A",
            "aliases": None,
            "contest_id": "1",
            "contest_name": "Round 1",
            "contest_type": "CF",
            "contest_start": 1266580800,
            "contest_start_year": 2010,
            "index": "A",
            "time_limit": 1.0,
            "memory_limit": 256.0,
            "title": "Sum",
            "description": "Print a + b.",
            "input_format": "a b",
            "output_format": "a + b",
            "examples": [{"input": "1 2\n", "output": "3\n"}],
            "note": None,
            "editorial": None,
            "prompt": "You will be given a problem. Print a + b. Use Python.",
            "generated_checker": None,
            "interaction_format": None,
            "rating": 800,
            "tags": ["math"],
            "testset_size": 2,
            "official_tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "9 1\n", "output": "10\n"}],
            "official_tests_complete": True,
            "input_mode": "stdio",
            "generated_tests": 0,
            "executable": True,
        },
        {
            "id": "2/B",
            "contest_id": "2",
            "index": "B",
            "title": "Any",
            "prompt": "Print any divisor.",
            "generated_checker": "def check(input, output): ...",
            "interaction_format": None,
            "rating": 900,
            "tags": [],
            "official_tests": [{"input": "6\n", "output": "2\n"}],
        },
        {
            "id": "3/C",
            "contest_id": "3",
            "index": "C",
            "title": "Guess",
            "prompt": "Guess the number.",
            "generated_checker": None,
            "interaction_format": "Ask queries ...",
            "rating": 1500,
            "tags": [],
            "official_tests": [{"input": "5\n", "output": ""}],
        },
    ],
    "humaneval": [
        {
            "task_id": "HumanEval/0",
            "prompt": 'def add(a, b):\n    """The sum of a and b."""\n',
            "canonical_solution": "    return a + b\n",
            "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
            "entry_point": "add",
        },
    ],
    "mbpp": [
        {
            "task_id": 11,
            "text": "Write a function to square a number.",
            "code": "def square(x): return x * x",
            "test_list": ["assert square(3) == 9", "assert square(-1) == 1"],
            "test_setup_code": "",
            "challenge_test_list": [],
        },
    ],
}

# preset: (prompt ids kept, {id: reference}, {reason: rows skipped}, {id: a right program})
PRESET_PLUS = "def larger(a, b):\n    return max(a, b)\n"
EXPECTED: dict[str, tuple[list[str], dict[str, str], dict[str, int], dict[str, str]]] = {
    "numinamath-1.5": (["0"], {"0": "5"}, {"no final answer to check (a proof, or none found)": 1}, {}),
    "numinamath-cot": (["0"], {"0": "9"}, {"no \\boxed answer in the solution": 1}, {}),
    "openr1-math": (["5a1b-77"], {"5a1b-77": "6"}, {}, {}),
    "deepscaler": (["0"], {"0": "\\frac{3}{4}"}, {}, {}),
    "aime": (["60"], {"60": "24"}, {}, {}),
    "gsm8k": (["0"], {"0": "1203"}, {"no '####' answer line": 1}, {}),
    "math": (["0", "test/prealgebra/1.json"], {"0": "4", "test/prealgebra/1.json": "\\frac{3}{4}"}, {}, {}),
    "taco": (["0", "1"], {}, {"no tests": 1}, {"0": ADD, "1": PRESET_PLUS}),
    "apps": (["4001", "4002"], {}, {}, {"4001": ADD, "4002": "def double(n):\n    return 2 * n\n"}),
    "codecontests": (["1_A. Sum"], {}, {"no tests": 1}, {"1_A. Sum": ADD}),
    "livecodebench": (
        ["1", "abc001_a"],
        {},
        {},
        {
            "1": "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
            "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
            "                return [seen[target - x], i]\n            seen[x] = i\n",
            "abc001_a": ADD,
        },
    ),
    "kodcode": (
        ["Leetcode_1"],
        {},
        {},
        {
            "Leetcode_1": "def mean(values):\n    if not values:\n        raise ValueError\n"
            "    return sum(values) / len(values)\n"
        },
    ),
    "codeforces": (
        ["1/A"],
        {},
        {"needs a checker (several outputs are right)": 1, "interactive": 1},
        {"1/A": ADD},
    ),
    "humaneval": (["HumanEval/0"], {}, {}, {"HumanEval/0": "def add(a, b):\n    return a + b\n"}),
    "mbpp": (["11"], {}, {}, {"11": "def square(x):\n    return x * x\n"}),
}
