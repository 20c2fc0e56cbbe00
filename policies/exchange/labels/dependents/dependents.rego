# METADATA
# title: Labels that reach a record from what it points at
# description: >-
#   A record that points at a labelled record of the same resident tells what that record
#   is: an ExplanationOfBenefit of a withheld Claim, a Provenance of a withheld Condition,
#   a DocumentReference of a psychiatric encounter, a Condition whose evidence is a
#   depression score. Which sensitivity labels reach a record, on the way in, from the
#   records it points at. Input: {"resource_type", "pointers": [{"path", "target_type",
#   "labels": [{"system", "code"}]}]}, each pointer to a labelled record of the same
#   resident, with the path of element names it sits at ("claim", "evidence.detail")
#   and the target's security labels. Rules: data.exchange.static.label_reach.
package exchange.labels.dependents

import rego.v1

rules := data.exchange.static.label_reach

# METADATA
# title: decision
# entrypoint: true
decision := {"labels": sort([l | some l in reached])}

# A pointer that withholds passes each sensitive label of its target: the record is then
# withheld wherever its target is (in SQL before counting and paging, on reads, in
# history, includes, chains and conditional matches), and released wherever it is. Only
# the labels the policies withhold travel (data.exchange.static.sensitive_labels); other
# security codings stay the target's own.
#
# Why withheld rather than released without the pointer: a pointer removed on the way out
# stays in the search index (a search by it, :missing, _include), in the record's earlier
# versions and in its writer's answers; and what is left of the record (an EOB's dates,
# amounts and payee, a Provenance's author and time) still mirrors its target.
reached contains {"system": label.system, "code": label.code} if {
	some pointer in input.pointers
	reach(pointer) == "withhold"
	some label in pointer.labels
	sensitive(label)
}

sensitive(label) if {
	some listed in data.exchange.static.sensitive_labels
	listed.system == label.system
	listed.code == label.code
}

# How a pointer's labels reach its record. A record whose labels are its own alone (the
# Patient: the resident, never withheld for what their records say) takes none; a pointer
# at the resident takes none (every record names them, and the name tells nothing of the
# record's target); a listed pointer as the list says; any other as the default, which
# withholds: a pointer nobody thought of fails closed.
reach(pointer) := "none" if {
	input.resource_type in rules.unreached_types
} else := "none" if {
	pointer.target_type in rules.silent_targets
} else := listed if {
	some rule in rules.pointers
	rule.type == input.resource_type
	rule.path == pointer.path
	listed := rule.reach
} else := rules.default
