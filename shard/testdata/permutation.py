# Independent Python implementation of shard.Permutation (see its doc comment);
# it produced the expected values of TestPermutationGolden. Run: python3 shard/testdata/permutation.py
M=(1<<64)-1
G=0x9E3779B97F4A7C15
def mix(z):
    z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M
    z=((z^(z>>27))*0x94D049BB133111EB)&M
    return z^(z>>31)
def perm(seed,epoch,n):
    st=mix((mix((seed+G)&M)+epoch+G)&M)
    def nxt():
        nonlocal st
        st=(st+G)&M
        return mix(st)
    def below(n):
        m=nxt()*n; hi,lo=m>>64,m&M
        if lo<n:
            t=((1<<64)-n)%n
            while lo<t:
                m=nxt()*n; hi,lo=m>>64,m&M
        return hi
    p=list(range(n))
    for i in range(n-1,0,-1):
        j=below(i+1); p[i],p[j]=p[j],p[i]
    return p
for s,e,n in [(1337,0,10),(1337,1,10),(0,0,10),(1337,0,20)]:
    print(s,e,n,perm(s,e,n))
