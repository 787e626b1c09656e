"""Deploy an image to the Swarm stack and prove that every replica runs it.

`python -m deploy --stack prework_stack --compose docker-compose.yml --image IMAGE
--version VERSION --url URL [--timeout SECONDS]`
"""
