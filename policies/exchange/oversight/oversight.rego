# METADATA
# title: Oversight of the audit trail
# description: >-
#   The audit trail (AuditEvent) is open to oversight organizations acting for compliance,
#   in full, and to each resident for their own record (resident). Never to other clients.
package exchange.oversight

import rego.v1

# The requester is an oversight organization acting for compliance.
acting if {
	input.requester.organization_kind in data.exchange.static.oversight_kinds
	input.requester.purpose in data.exchange.static.oversight_purposes
}

# METADATA
# title: audit_oversight
# description: >-
#   The audit trail is open to oversight organizations acting for compliance, in full,
#   and to each resident for their own record (resident_self). Never to other clients.
types contains t if {
	data.exchange.request.client
	not data.exchange.request.writing
	some t in data.exchange.request.requested
	t in data.exchange.static.audit_types
	acting
	data.exchange.request.scope_allows(t)
}

# METADATA
# title: audit_oversight
# description: A compliance office reviewed the audit trail.
# custom:
#   reason: audit_oversight
#   en: A compliance office reviewed the audit trail.
#   zh: 合规部门查阅审计记录。
reasons contains "audit_oversight" if count(types) > 0
