"BR-Net for crowds of overlapping C. elegans: LabelMe/COCO tooling, model, training, evaluation and attention maps."
__version__ = "0.1.0"
