"""Make ``ansible_collections.prodgate.deploy`` importable in pytest from the checkout.

collections/ansible_collections/prodgate/deploy links back to the repository root; Ansible's own
collection finder serves it (and the community collections from site-packages), as at run time.
"""
import os

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_COLLECTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "collections")
_AnsibleCollectionFinder(paths=[_COLLECTIONS])._install()
