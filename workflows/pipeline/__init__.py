"""The pipeline (``ionfield run``): check -> active learning on the campaign systems -> validation -> campaign."""
