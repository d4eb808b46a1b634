package mls

// NewGroupWithMember is NewGroup followed at once by AddOnlyMemberWelcome
// with kp and MergePendingCommit: the creator makes the group for the one
// member it adds, as a two-party session's responder does (docs/protocol.md
// 7.7). It returns the group, in epoch 1, and the Welcome.
//
// Nobody but the creator ever holds epoch 0, and the creator only commits
// from it, so of its secrets only those the commit needs are derived
// (commitEpochSecrets), and it has no secret tree: sending or exporting in
// epoch 0 is impossible through this function, which is what makes the
// shortcut safe.
func NewGroupWithMember(s *CipherSuite, groupID, sigPriv []byte, cred Credential, extensions Extensions, cfg GroupConfig, kp *CheckedKeyPackage) (*Group, *MLSMessage, error) {
	g, err := newGroup(s, groupID, sigPriv, cred, extensions, cfg, true)
	if err != nil {
		return nil, nil, err
	}
	welcome, err := g.AddOnlyMemberWelcome(kp)
	if err == nil {
		err = g.MergePendingCommit()
	}
	if err != nil {
		g.Close()
		return nil, nil, err
	}
	return g, welcome, nil
}
