"""The inngest provider: docjobs' actors as Inngest functions, events out, signed calls in."""
