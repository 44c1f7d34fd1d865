"""What flows into and out of a network, as files: weights (.npz, PyTorch state_dicts),
input batches (.npy) and images, read within limits and written atomically.

    weights  load, check and save weights; their sizes
    arrays   reading .npy/.npz archives header first, within the memory there is
    images   PNG/JPEG in (resized to the input) and feature maps out (needs Pillow)
"""
