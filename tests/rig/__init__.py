"""The project's test rig: everything that runs the provider's real binary locally, for the
end-to-end suite (tests/e2e), the benchmark (bench/bench.py), the demo (scripts/demo.py) and
scripts/invoke.py. Importable as ``rig`` with ``tests`` on the Python path (the scripts set
PYTHONPATH=tests; tests/e2e/pytest.ini sets ``pythonpath``).

    constants    where things are, the account, credentials, others' policies
    interface    what the rig reads of the Rust provider (tests/interface.json), only here
    procs        processes that end by themselves; ports; the run marker
    logs         slicing a log file that is still being written
    moto         moto's server (ECR, S3, DynamoDB), the response bucket, live policies, tables
    moto_stacksets  moto's server with StackSet updates reaching each instance's stack
    stacksets    an organization rollout: OU and accounts, artifact buckets, `make package`,
                 what a member account holds in a region
    env          the provider's environment, pointed at the local parts
    template     the function's settings (and its tables) as template.yaml declares them
    policies     policy text: the compact form the provider writes, the same grant rewritten
    events       the sample events and the ones that follow them
    runtime_api  the Runtime API emulator that sets each invocation's deadline; one
                 function process or several polling it (concurrent invocations)
    faultproxy   the fault-injecting proxy between the provider and moto; DynamoDB's calls
                 through it one at a time (moto's conditional writes are not atomic)
    runtimes     cargo lambda watch, the emulator and AWS's RIE behind one interface
    cloud        moto + bucket + lock table (+ proxy) + functions; sending events, one at a
                 time or many at once, getting Outcomes
    outcome      one event and what came of it
    asserts      what a right answer is, once
    samples      the sample events as `sam local invoke` runs them: preconditions, outcomes
    show         printing requests, responses and live policies for people
"""
