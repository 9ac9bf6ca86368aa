"""The mdb language: parser, evaluator, format engine and session state, independent of targets."""
