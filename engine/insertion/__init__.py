"""Object insertion in images and videos (InVi); the job's contract is `engine.insertion.insert`."""
