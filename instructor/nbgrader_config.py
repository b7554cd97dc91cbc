# nbgrader's configuration for the latentboost_lab course folder. `python -m latentboost_lab.course
# instructor OUT` copies it into OUT, beside source/; run nbgrader's commands inside OUT.
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "latentboost_lab"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# The assignments train small models: give a cell up to 10 minutes when grading (QUICK needs far
# less; MEDIUM a few minutes per training cell on a 2-core CPU).
c.ExecutePreprocessor.timeout = 600
# A student's own data path and setting come from the environment (LATENTBOOST_DATA,
# LATENTBOOST_MODE); grade in the setting the assignment was handed out in.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
